import { useEffect } from 'react';
import type { Notice } from '../store/flowStore';
import { useController, useFlow } from '../store/context';

function NoticeItem({ notice }: { notice: Notice }) {
  const store = useController().store;
  useEffect(() => {
    const t = setTimeout(() => store.getState().dismiss(notice.id), notice.kind === 'error' ? 10000 : 4000);
    return () => clearTimeout(t);
  }, [notice, store]);
  return (
    <div
      className={`notice ${notice.kind}`}
      role={notice.kind === 'error' ? 'alert' : 'status'}
      data-testid={notice.topic === 'alert' ? 'alert-toast' : 'notice'}
    >
      <span className="msg">{notice.message}</span>
      <button className="icon-btn" aria-label="Dismiss" onClick={() => store.getState().dismiss(notice.id)}>
        ×
      </button>
    </div>
  );
}

export function Notices() {
  const notices = useFlow((s) => s.notices);
  return (
    <div className="notices">
      {notices.map((n) => (
        <NoticeItem key={n.id} notice={n} />
      ))}
    </div>
  );
}
