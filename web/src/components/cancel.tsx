// The button that cancels a running run (POST /api/runs/{id}/cancel). The run's page and lists
// learn that it ended from the server's events, like any other end of a run.
import { useState } from 'preact/hooks';

import { api } from '../api';
import { canEdit, useSession } from '../session';

export function CancelButton({ id }: { id: string }) {
  const session = useSession();
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!canEdit(session)) return null;
  const cancel = async (): Promise<void> => {
    setSent(true);
    try {
      await api.cancelRun(id);
      setError(null);
    } catch (e) {
      setSent(false);
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <span class="cancel-wrap">
      <button
        type="button"
        class="cancel"
        name="cancel"
        data-run={id}
        disabled={sent}
        title="Stop this run: it counts neither as a run nor as a failure"
        onClick={() => void cancel()}
      >
        {sent ? 'cancelling…' : 'cancel'}
      </button>
      {error && <span class="fail-text small"> {error}</span>}
    </span>
  );
}
