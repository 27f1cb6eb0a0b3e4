// `/repos/{repo}/commits/{sha}`: the commit's builds and tests with status, runs, failure rate,
// editable target runs and dependencies; its test sets (toggled here); its definitions file and
// error; the resolved definition of each object.
import { CulpritBanner } from '../components/changes';
import { useEffect, useState } from 'preact/hooks';

import { api, type Commit, type CommitObject } from '../api';
import { BootButton } from '../components/deploy_buttons';
import { Crumbs, Loading, Problem, useTitle, When } from '../components/layout';
import { StatusBadge } from '../components/status';
import { VerdictBadge } from '../components/verdict';
import { modelClass, paths, rateText, shortSha } from '../format';
import { useLive } from '../live';
import { canEdit, useSession } from '../session';

function TargetControl({ repo, sha, o, done }: { repo: string; sha: string; o: CommitObject; done: () => void }) {
  const [value, setValue] = useState(String(o.target_runs));
  const [error, setError] = useState<string | null>(null);
  const [dirty, setDirty] = useState(false);
  const session = useSession();
  useEffect(() => {
    if (!dirty) setValue(String(o.target_runs));
  }, [o.target_runs, dirty]);
  if (!canEdit(session)) return <span class="num">{o.target_runs}</span>;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) {
      setError('a whole number ≥ 0');
      return;
    }
    try {
      await api.setTarget(repo, sha, o.name, n);
      setError(null);
      setDirty(false);
      done();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form class="inline" onSubmit={(e) => void submit(e)}>
      <input
        class="num"
        type="number"
        min={0}
        name="target"
        value={value}
        onInput={(e) => {
          setDirty(true);
          setValue((e.target as HTMLInputElement).value);
        }}
      />
      <button type="submit" name="set-target" disabled={!dirty}>
        set
      </button>
      <Problem error={error} />
    </form>
  );
}

function Dependencies({ o }: { o: CommitObject }) {
  const deps = o.definition?.dependencies;
  if (!deps || typeof deps !== 'object' || Object.keys(deps).length === 0) return <span class="muted">none</span>;
  return (
    <span class="deps">
      {Object.entries(deps).map(([path, value]) => (
        <span key={path} title={JSON.stringify(value)}>
          {path}: <code>{typeof value === 'string' ? value : describe(value)}</code>
        </span>
      ))}
    </span>
  );
}

// A resolved dependency (definitions_json.cc): a source tree or a build's output.
function describe(value: unknown): string {
  const v = (value ?? {}) as Record<string, string | undefined>;
  if (v.kind === 'source') {
    return `source ${v.repo ?? ''}@${(v.commit ?? '').slice(0, 8)}${v.path ? `/${v.path}` : ''}`;
  }
  if (v.kind === 'build') return `build ${v.name ?? ''}${v.artifact ? `/${v.artifact}` : ''}`;
  return JSON.stringify(value);
}

// How many of the object's cases are classified as what, when some are not good: "2 flaky".
function CaseVerdicts({ o }: { o: CommitObject }) {
  const tally = new Map<string, string[]>();
  for (const [name, counts] of Object.entries(o.cases ?? {})) {
    const v = counts.classification?.verdict;
    if (!v || v === 'good' || v === 'unknown') continue;
    tally.set(v, [...(tally.get(v) ?? []), name]);
  }
  if (tally.size === 0) return null;
  return (
    <div class="muted small case-verdicts">
      cases:{' '}
      {[...tally].map(([v, names]) => (
        <span key={v} class={`v-${v}`} title={names.join('\n')}>
          {names.length} {v}{' '}
        </span>
      ))}
    </div>
  );
}

function ObjectRow({ c, o, done }: { c: Commit; o: CommitObject; done: () => void }) {
  return (
    <>
      <tr data-name={o.name} data-runs={o.runs} data-active={o.active_runs}>
        <td>
          <a href={paths.test(c.repo, c.sha, o.name)}>{o.name}</a>
        </td>
        <td class="muted">{o.kind}</td>
        <td title={o.reason}>
          <StatusBadge status={o.status} active={o.active_runs} />
          {o.reason && <div class="muted small">{o.reason}</div>}
        </td>
        <td class="runs">{o.runs}</td>
        <td class={`rate ${modelClass(o.classification, o.runs, o.failures)}`}>
          {o.failures}/{o.runs} · {rateText(o.failure_rate, o.runs)}
        </td>
        <td class="classification">
          <VerdictBadge c={o.classification} rate={o.runs > 0 ? o.failures / o.runs : undefined} />
          <CaseVerdicts o={o} />
        </td>
        <td>
          {o.kind === 'test' ? (
            <TargetControl repo={c.repo} sha={c.sha} o={o} done={done} />
          ) : o.kind === 'deployment' ? (
            <BootButton repo={c.repo} sha={c.sha} name={o.name} />
          ) : (
            <span class="muted">{o.target_runs}</span>
          )}
        </td>
        <td>
          <Dependencies o={o} />
        </td>
      </tr>
      <tr class="definition">
        <td colSpan={8}>
          <details>
            <summary>resolved definition · {o.hash.slice(0, 12)}</summary>
            <pre>{JSON.stringify(o.definition, null, 2)}</pre>
          </details>
        </td>
      </tr>
    </>
  );
}

function TestSets({ c, done }: { c: Commit; done: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const editable = canEdit(useSession());
  const sets = Object.entries(c.test_sets ?? {});
  if (sets.length === 0) return null;
  const toggle = async (set: string, enabled: boolean): Promise<void> => {
    try {
      await api.setTestSet(c.repo, c.sha, set, enabled);
      setError(null);
      done();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <section>
      <h2>Test sets</h2>
      <Problem error={error} />
      <table class="list sets">
        <tbody>
          {sets.map(([set, names]) => (
            <tr key={set} data-set={set}>
              <td>
                <label>
                  <input
                    type="checkbox"
                    name={`set-${set}`}
                    checked={c.enabled_sets.includes(set)}
                    disabled={!editable}
                    onChange={(e) => void toggle(set, (e.target as HTMLInputElement).checked)}
                  />{' '}
                  <b>{set}</b>
                </label>
              </td>
              <td>{(c.triggered_test_sets ?? []).includes(set) && <span class="badge">triggered</span>}</td>
              <td class="muted small">{names.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function CommitPage({ args }: { args: string[] }) {
  const [repo, sha] = [args[0]!, args[1]!];
  const live = useLive(
    () => api.commit(repo, sha),
    [repo, sha],
    (e) => e.type === 'runs' || (e.repo === repo && e.type !== 'branch'),
  );
  const c = live.data;
  useTitle(c ? `${shortSha(sha)} ${c.subject}` : shortSha(sha), repo);
  return (
    <>
      <Crumbs items={[['repos', '/'], [repo, paths.repo(repo)], [shortSha(sha), null]]} />
      <Problem error={live.error} />
      {!c ? (
        <Loading what="commit" error={live.error} />
      ) : (
        <>
          <h1>{c.subject}</h1>
          <CulpritBanner repo={repo} sha={c.sha} />
          <p class="commit-meta">
            <code>{c.sha}</code> · {c.author} · <When t={c.time} />
            {c.parents.map((p, i) => (
              <span key={p}>
                {' '}
                · {i === 0 ? 'parent' : 'merged'} <a href={paths.commit(repo, p)}>{shortSha(p)}</a>
              </span>
            ))}
          </p>
          <p>
            definitions: {c.file ? <code>{c.file}</code> : <span class="muted">no definitions file</span>}
          </p>
          {c.error && (
            <pre class="problem definitions-error" data-error>
              {c.error}
            </pre>
          )}
          <TestSets c={c} done={live.reload} />
          <h2>Builds and tests</h2>
          {c.objects.length === 0 ? (
            <p class="muted">This commit defines nothing to build or test.</p>
          ) : (
            <table class="list objects">
              <thead>
                <tr>
                  <th>name</th>
                  <th>kind</th>
                  <th>status</th>
                  <th>runs</th>
                  <th>failures · rate (95%)</th>
                  <th>classification</th>
                  <th>target runs</th>
                  <th>dependencies</th>
                </tr>
              </thead>
              <tbody>
                {c.objects.map((o) => (
                  <ObjectRow key={o.name} c={c} o={o} done={live.reload} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}
