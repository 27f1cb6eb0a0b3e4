// The buttons that start a deployment: Boot (a commit's deployment) and Debug (a run's test with
// its inputs, docs/api.md "Deployments"). Both open the deployment's page, with its terminal.
import { useState } from 'preact/hooks';

import { api } from '../api';
import { paths } from '../format';
import { navigate } from '../router';
import { canEdit, useSession } from '../session';

function StartButton(props: { label: string; title: string; start: () => Promise<{ id: string }> }) {
  const session = useSession();
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!canEdit(session)) return null;
  const start = async (): Promise<void> => {
    setSent(true);
    try {
      const d = await props.start();
      navigate(paths.deployment(d.id));
    } catch (e) {
      setSent(false);
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <span class="deploy-wrap">
      <button type="button" name={props.label} disabled={sent} title={props.title} onClick={() => void start()}>
        {sent ? `${props.label}…` : props.label}
      </button>
      {error && <span class="fail-text small"> {error}</span>}
    </span>
  );
}

export function BootButton({ repo, sha, name }: { repo: string; sha: string; name: string }) {
  return (
    <StartButton
      label="boot"
      title="Boot this deployment (its builds first) and open its terminal"
      start={() => api.bootDeployment(repo, sha, name)}
    />
  );
}

export function DebugButton({ id }: { id: string }) {
  return (
    <StartButton
      label="debug"
      title="A terminal in this run's environment with its inputs staged, to reproduce it by hand"
      start={() => api.debugRun(id)}
    />
  );
}
