// "Run N more" and "Retry": ask for more runs of a test at a commit (its target raised by N
// above the runs it has: POST .../targets), or retry an object blocked by infrastructure failures
// (POST .../retry). Shown to those who may edit (session.canEdit).
import { useState } from 'preact/hooks';

import { api } from '../api';
import { canEdit, useSession } from '../session';
import { Problem } from './layout';

export interface Wanted {
  name: string;
  kind: string;
  runs: number;
  target_runs?: number;
  status: string | null;
}

// The target that gives `o` n more runs than it has or already wants.
export function moreRunsTarget(o: Wanted, n: number): number {
  return Math.max(o.runs, o.target_runs ?? 0) + n;
}

export function MoreRuns({
  repo,
  sha,
  objects,
  label,
  done,
}: {
  repo: string;
  sha: string;
  objects: Wanted[]; // the tests (and builds, for Retry) the buttons act on
  label?: string; // what they are, e.g. "of the 3 failing or flaky tests"
  done?: () => void;
}) {
  const session = useSession();
  const [n, setN] = useState(10);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [said, setSaid] = useState('');
  if (!canEdit(session)) return null;
  const tests = objects.filter((o) => o.kind === 'test');
  const blocked = objects.filter((o) => o.status === 'infra_blocked');
  const act = async (what: () => Promise<unknown>, message: string): Promise<void> => {
    setBusy(true);
    try {
      await what();
      setError(null);
      setSaid(message);
      done?.();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
    setBusy(false);
  };
  return (
    <span class="more-runs">
      {tests.length > 0 && (
        <>
          <button
            type="button"
            name="run-more"
            disabled={busy}
            onClick={() =>
              void act(
                () => Promise.all(tests.map((o) => api.setTarget(repo, sha, o.name, moreRunsTarget(o, n)))),
                `asked for ${n} more runs${tests.length > 1 ? ` of ${tests.length} tests` : ''}`,
              )
            }
          >
            Run {n} more
          </button>
          <select
            name="more-count"
            value={String(n)}
            title="how many more runs"
            onChange={(e) => setN(Number((e.target as HTMLSelectElement).value))}
          >
            {[1, 5, 10, 20, 50].map((k) => (
              <option value={String(k)}>{k}</option>
            ))}
          </select>
          {label && <span class="muted"> {label}</span>}
        </>
      )}
      {blocked.length > 0 && (
        <button
          type="button"
          name="retry"
          disabled={busy}
          title="forget the infrastructure failures that block it and run it again"
          onClick={() =>
            void act(
              () => Promise.all(blocked.map((o) => api.retry(repo, sha, o.name))),
              `retrying ${blocked.map((o) => o.name).join(', ')}`,
            )
          }
        >
          Retry{blocked.length > 1 ? ` ${blocked.length} blocked` : ''}
        </button>
      )}
      {said && (
        <span class="muted said" data-said={said}>
          {' '}
          {said}
        </span>
      )}
      <Problem error={error} />
    </span>
  );
}
