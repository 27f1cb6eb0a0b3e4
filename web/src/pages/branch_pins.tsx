// The pins of a branch's head on the branch page: where each `repos:` entry points, how far
// behind its branch it is, and (editors) a button that moves it to the branch's head
// (POST .../pins/{name}; the server commits and pushes, docs/definitions.md "How pins move").
import { useEffect, useState } from 'preact/hooks';

import { api, type Pin } from '../api';
import { Problem } from '../components/layout';
import { paths, shortSha } from '../format';
import { canEdit, useSession } from '../session';

function behindText(p: Pin): string {
  if (p.head === null) return 'branch not found';
  if (p.commit === 'HEAD') return 'not pinned yet (HEAD)';
  if (p.behind === null) return 'not on the branch';
  return p.behind === 0 ? 'up to date' : `${p.behind} behind`;
}

export function BranchPins({ repo, branch, head }: { repo: string; branch: string; head: string }) {
  const session = useSession();
  const [pins, setPins] = useState<Pin[] | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    api
      .pins(repo, branch)
      .then((p) => alive && setPins(p))
      .catch(() => alive && setPins([]));
    return () => {
      alive = false;
    };
  }, [repo, branch, head]);
  if (!pins || pins.length === 0) return null;
  const update = async (p: Pin): Promise<void> => {
    setBusy(p.name);
    setError(null);
    try {
      await api.updatePin(repo, branch, p.name, 'branch-head');
      setPins(await api.pins(repo, branch));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
    setBusy(null);
  };
  return (
    <section class="pins">
      <h2>Pins</h2>
      <table class="list">
        <thead>
          <tr>
            <th>name</th>
            <th>follows</th>
            <th>points to</th>
            <th>branch head</th>
            <th />
            <th>file</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pins.map((p) => (
            <tr data-pin={p.name}>
              <td>
                {p.name}
                {p.auto && <span class="muted"> (auto)</span>}
              </td>
              <td>
                {p.repo}/{p.branch}
              </td>
              <td>{p.commit === 'HEAD' ? 'HEAD' : <a href={paths.commit(p.repo, p.commit)}>{shortSha(p.commit)}</a>}</td>
              <td>{p.head ? <a href={paths.commit(p.repo, p.head)}>{shortSha(p.head)}</a> : '—'}</td>
              <td class="behind">{behindText(p)}</td>
              <td class="muted">{p.file}</td>
              <td>
                {canEdit(session) && p.head !== null && p.head !== p.commit && (
                  <button type="button" name="update-pin" disabled={busy !== null} onClick={() => void update(p)}>
                    {busy === p.name ? 'Updating…' : 'Update to branch head'}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Problem error={error} />
    </section>
  );
}
