// The UI's entry: routes each stable URL (docs/web.md) to its page. Pages that bring heavy
// libraries (xterm.js, uPlot) are loaded when first visited.
import './style.css';

import { render, type ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { Layout, Loading, useTitle } from './components/layout';
import { ChangesPage } from './pages/changes_page';
import { CommitPage } from './pages/commit_page';
import { HistoryPage } from './pages/history_page';
import { RepoPage } from './pages/repo_page';
import { ReposPage } from './pages/repos_page';
import { TestPage } from './pages/test_page';
import { MachinesPage } from './pages/machines_page';
import { WorkersPage } from './pages/workers_page';
import { paths } from './format';
import { loadSession } from './session';
import { interceptLinks, navigate, usePlace, type Place } from './router';

type Params = { place: Place; args: string[] };
type Page = ComponentType<Params>;

// Loads a page module on first use.
function lazy(load: () => Promise<{ default: Page }>): Page {
  let loaded: Page | null = null;
  return function LazyPage(props: Params) {
    const [page, setPage] = useState<Page | null>(() => loaded);
    useEffect(() => {
      if (!loaded) void load().then((m) => setPage(() => (loaded = m.default)));
    }, []);
    const Component = page ?? loaded;
    return Component ? <Component {...props} /> : <Loading what="page" />;
  };
}

const LazyRunPage = lazy(() => import('./pages/run_page'));
// The run page (pages/run_page.tsx) with its title.
function RunPage(props: Params) {
  useTitle(`Run ${props.args[0] ?? ''}`);
  return <LazyRunPage {...props} />;
}
const TestHistoryPage = lazy(() => import('./pages/test_history_page'));
const DeploymentsPage = lazy(() => import('./pages/deployments_page'));

const kRoutes: Array<[RegExp, Page]> = [
  [/^\/$/, ReposPage],
  [/^\/workers\/?$/, WorkersPage],
  [/^\/machines\/?$/, MachinesPage],
  [/^\/deployments\/?$/, DeploymentsPage],
  [/^\/deployments\/([^/]+)$/, DeploymentsPage],
  [/^\/runs\/([^/]+)$/, RunPage],
  [/^\/repos\/([^/]+)\/?$/, RepoPage],
  [/^\/repos\/([^/]+)\/commits\/([^/]+)\/tests\/(.+)$/, TestPage],
  [/^\/repos\/([^/]+)\/commits\/([^/]+)\/?$/, CommitPage],
  [/^\/repos\/([^/]+)\/branches\/(.+?)\/tests\/(.+)$/, TestHistoryPage],
  [/^\/repos\/([^/]+)\/branches\/(.+?)\/changes\/?$/, ChangesPage],
  [/^\/repos\/([^/]+)\/branches\/(.+?)\/?$/, HistoryPage],
];

function NotFound({ place }: Params) {
  useTitle('Not found');
  return (
    <div class="problem">
      No page at {place.path}. <a href="/">All repos</a>
    </div>
  );
}

// The old URL of a test history, `/repos/{repo}/branches/{branch}?test={name}`, moved to
// `/repos/{repo}/branches/{branch}/tests/{name}`.
function MovedTestHistory({ place, args }: Params) {
  useEffect(() => {
    const rest = new URLSearchParams(place.query);
    rest.delete('test');
    const q = rest.toString();
    const to = paths.testHistory(args[0]!, args[1]!, place.query.get('test')!) + (q ? `?${q}` : '');
    // After the App's own effects, which listen to navigate(), have run.
    const timer = setTimeout(() => navigate(to, true));
    return () => clearTimeout(timer);
  }, [place, args]);
  return <Loading what="page" />;
}

function App() {
  const place = usePlace();
  for (const [re, Page] of kRoutes) {
    const m = re.exec(place.path);
    if (!m) continue;
    const args = m.slice(1).map((s) => decodeURIComponent(s));
    const Chosen = Page === HistoryPage && place.query.get('test') ? MovedTestHistory : Page;
    return (
      <Layout>
        <Chosen place={place} args={args} />
      </Layout>
    );
  }
  return (
    <Layout>
      <NotFound place={place} args={[]} />
    </Layout>
  );
}

interceptLinks();
void loadSession();
render(<App />, document.getElementById('app')!);
