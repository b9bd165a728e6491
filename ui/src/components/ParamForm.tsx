// The params editor, rendered from the node type's JSON Schema. Every input has the test id
// `param-<path>` where path is the dotted path of the value (`conditions.0.field`).
import { useState } from 'react';
import {
  asSchema,
  discriminator,
  enumOptions,
  fieldInfo,
  initialValue,
  parseJsonInput,
  parseNumberInput,
  properties,
  requiredKeys,
  shownDefault,
  variantFor,
  variants,
  type Schema,
} from '../model/schemaForm';
import { joinPath } from '../model/paths';

export type Errors = Record<string, string[]>;

interface FieldProps {
  path: string;
  label: string;
  schema: Schema;
  value: unknown;
  required: boolean;
  errors: Errors;
  onChange: (path: string, value: unknown) => void;
  /** Rendered inside a list item: no label row. */
  bare?: boolean;
}

function ErrorLines({ errors, path }: { errors: Errors; path: string }) {
  const list = errors[path];
  if (!list || list.length === 0) return null;
  return (
    <>
      {list.map((m, i) => (
        <div key={i} className="field-error" data-testid={`param-error-${path}`}>
          {m}
        </div>
      ))}
    </>
  );
}

function Label({ label, schema, required }: { label: string; schema: Schema; required: boolean }) {
  const desc = typeof schema.description === 'string' ? schema.description : '';
  return (
    <div className="field-label" title={desc}>
      <span>{label}</span>
      {required && <span className="req">*</span>}
      {desc && <span className="field-hint">{desc.split('\n')[0]}</span>}
    </div>
  );
}

function display(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A text input for numbers that keeps what is being typed (`1.`, `-`) until it parses. */
function NumberInput({ path, value, placeholder, onChange, invalid }: { path: string; value: unknown; placeholder: string; onChange: (v: unknown) => void; invalid: boolean }) {
  const [draft, setDraft] = useState<{ text: string; value: unknown }>({ text: display(value), value });
  const text = draft.value === value ? draft.text : display(value);
  return (
    <input
      data-testid={`param-${path}`}
      className={invalid ? 'invalid' : ''}
      inputMode="decimal"
      value={text}
      placeholder={placeholder}
      onChange={(e) => {
        const parsed = parseNumberInput(e.target.value);
        setDraft({ text: e.target.value, value: parsed });
        onChange(parsed);
      }}
    />
  );
}

/** A JSON editor for values the form has no better widget for. */
function JsonInput({ path, value, placeholder, onChange, invalid }: { path: string; value: unknown; placeholder: string; onChange: (v: unknown) => void; invalid: boolean }) {
  const show = (v: unknown) => (v === undefined ? '' : JSON.stringify(v, null, 2));
  const [draft, setDraft] = useState<{ text: string; value: unknown; error: string | null }>({ text: show(value), value, error: null });
  const current = draft.value === value;
  const text = current ? draft.text : show(value);
  const error = current ? draft.error : null;
  return (
    <>
      <textarea
        data-testid={`param-${path}`}
        className={`json ${invalid || error ? 'invalid' : ''}`}
        spellCheck={false}
        rows={Math.min(12, Math.max(2, text.split('\n').length))}
        value={text}
        placeholder={placeholder}
        onChange={(e) => {
          const r = parseJsonInput(e.target.value);
          if (r.error !== undefined) {
            setDraft({ text: e.target.value, value, error: r.error });
          } else {
            setDraft({ text: e.target.value, value: r.value, error: null });
            onChange(r.value);
          }
        }}
      />
      {error && <div className="field-error">{error}</div>}
    </>
  );
}

const MULTILINE = new Set(['script', 'expression', 'query', 'sql']);

export function Field({ path, label, schema: outer, value, required, errors, onChange, bare }: FieldProps) {
  const info = fieldInfo(outer);
  // The schema the editor is for (an optional value's inner schema).
  const schema = info.schema;
  const def = shownDefault(outer);
  const placeholder = def !== undefined && def !== null && def !== '' ? `default: ${display(def)}` : '';
  const invalid = !!errors[path]?.length;
  const set = (v: unknown) => onChange(path, v);
  const key = path.split('.').pop() ?? path;
  let control: React.ReactNode;

  switch (info.kind) {
    case 'string':
      control = MULTILINE.has(key) ? (
        <textarea
          data-testid={`param-${path}`}
          className={`code ${invalid ? 'invalid' : ''}`}
          spellCheck={false}
          rows={key === 'script' || key === 'query' ? 6 : 3}
          value={display(value)}
          placeholder={placeholder}
          onChange={(e) => set(e.target.value === '' && !required ? undefined : e.target.value)}
        />
      ) : (
        <input
          data-testid={`param-${path}`}
          className={invalid ? 'invalid' : ''}
          value={typeof value === 'string' ? value : display(value)}
          placeholder={placeholder}
          onChange={(e) => set(e.target.value === '' && !required ? (info.nullable ? null : undefined) : e.target.value)}
        />
      );
      break;
    case 'integer':
    case 'number':
      control = <NumberInput path={path} value={value} placeholder={placeholder} invalid={invalid} onChange={set} />;
      break;
    case 'boolean':
      control = (
        <label className="check">
          <input
            type="checkbox"
            data-testid={`param-${path}`}
            checked={value === undefined ? def === true : value === true}
            onChange={(e) => set(e.target.checked)}
          />
          <span>{value === undefined && def !== undefined ? `${String(def)} (default)` : String(value === true)}</span>
        </label>
      );
      break;
    case 'enum': {
      const opts = enumOptions(schema);
      const idx = opts.findIndex((o) => o === value);
      control = (
        <select
          data-testid={`param-${path}`}
          className={invalid ? 'invalid' : ''}
          value={idx >= 0 ? String(idx) : ''}
          onChange={(e) => set(e.target.value === '' ? (info.nullable ? null : undefined) : opts[Number(e.target.value)])}
        >
          {(idx < 0 || !required) && <option value="">{def !== undefined && def !== null ? `default (${display(def)})` : '—'}</option>}
          {opts.map((o, i) => (
            <option key={i} value={String(i)}>
              {display(o)}
            </option>
          ))}
        </select>
      );
      break;
    }
    case 'const':
      control = <input data-testid={`param-${path}`} value={display(schema.const)} readOnly />;
      break;
    case 'array': {
      const items = Array.isArray(value) ? value : [];
      const itemSchema = asSchema(schema.items);
      const itemKind = fieldInfo(itemSchema).kind;
      const compact = itemKind !== 'object' && itemKind !== 'variant';
      control = (
        <div className="array">
          {value !== undefined && !Array.isArray(value) && <div className="field-error">not a list: {display(value)}</div>}
          {items.map((item, i) => (
            <div key={i} className={`array-item ${compact ? 'compact' : ''}`}>
              <div className="array-item-body">
                <Field
                  path={joinPath(path, i)}
                  label={`#${i + 1}`}
                  schema={itemSchema}
                  value={item}
                  required
                  errors={errors}
                  onChange={onChange}
                  bare
                />
              </div>
              <button
                className="icon-btn"
                data-testid={`param-${joinPath(path, i)}-remove`}
                title="Remove"
                onClick={() => set(items.filter((_, j) => j !== i))}
              >
                ×
              </button>
            </div>
          ))}
          <button className="btn small" data-testid={`param-${path}-add`} onClick={() => set([...items, initialValue(itemSchema, true)])}>
            + Add
          </button>
        </div>
      );
      break;
    }
    case 'object': {
      const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
      control = <ObjectFields path={path} schema={schema} value={obj} errors={errors} onChange={onChange} />;
      break;
    }
    case 'variant': {
      const d = discriminator(schema);
      const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
      const v = variantFor(schema, obj);
      const all = variants(schema);
      const tag = d ? obj[d.key] : undefined;
      control = (
        <div className="variant">
          {d && (
            <div className="field">
              <div className="field-label">
                <span>{d.key}</span>
              </div>
              <select
                data-testid={`param-${joinPath(path, d.key)}`}
                value={typeof tag === 'string' && d.values.includes(tag) ? tag : ''}
                onChange={(e) => {
                  const i = d.values.indexOf(e.target.value);
                  if (i >= 0) set(initialValue(all[i], true));
                }}
              >
                {!(typeof tag === 'string' && d.values.includes(tag)) && <option value="">—</option>}
                {d.values.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </div>
          )}
          {v && <ObjectFields path={path} schema={v} value={obj} errors={errors} onChange={onChange} skip={d?.key} />}
        </div>
      );
      break;
    }
    case 'json':
      control = <JsonInput path={path} value={value} placeholder={placeholder || 'JSON'} invalid={invalid} onChange={set} />;
      break;
  }

  const nested = info.kind === 'object' || info.kind === 'variant' || info.kind === 'array';
  return (
    <div className={`field kind-${info.kind} ${nested ? 'nested' : ''}`}>
      {!bare && <Label label={label} schema={outer} required={required} />}
      {control}
      <ErrorLines errors={errors} path={path} />
    </div>
  );
}

export function ObjectFields({
  path,
  schema,
  value,
  errors,
  onChange,
  skip,
}: {
  path: string;
  schema: Schema;
  value: Record<string, unknown>;
  errors: Errors;
  onChange: (path: string, value: unknown) => void;
  skip?: string;
}) {
  const req = new Set(requiredKeys(schema));
  const props = Object.entries(properties(schema)).filter(([k]) => k !== skip);
  // Required fields first, then the rest, each in schema order.
  props.sort(([a], [b]) => Number(req.has(b)) - Number(req.has(a)));
  return (
    <div className="object-fields">
      {props.map(([key, sub]) => (
        <Field
          key={key}
          path={joinPath(path, key)}
          label={key}
          schema={sub}
          value={value[key]}
          required={req.has(key)}
          errors={errors}
          onChange={onChange}
        />
      ))}
    </div>
  );
}
