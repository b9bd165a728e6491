import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api';

/**
 * A list read from the backend when the component mounts, and `act`, which runs a change, reads
 * the list again and shows what failed: what the two parts of the Secrets dialog share. `load`
 * must keep its identity between renders (`useCallback`).
 */
export function useBackendList<T>(load: () => Promise<T[]>) {
  const [list, setList] = useState<T[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    load()
      .then((l) => {
        if (live) setList(l);
      })
      .catch((e: unknown) => {
        if (live) setError(errorMessage(e));
      });
    return () => {
      live = false;
    };
  }, [load]);

  const act = useCallback(
    async (work: () => Promise<void>) => {
      setError(null);
      setBusy(true);
      try {
        await work();
        setList(await load());
      } catch (e) {
        setError(errorMessage(e));
      } finally {
        setBusy(false);
      }
    },
    [load],
  );

  return { list, busy, error, act };
}
