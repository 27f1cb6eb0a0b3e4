// Formatting shared by the pages: ages, durations, rates, and the URLs of the pages.
import { encodePath, type Classification, type Rate } from './api';

export const shortSha = (sha: string): string => sha.slice(0, 8);

export function age(seconds: number, now = Date.now() / 1000): string {
  const d = Math.max(0, now - seconds);
  if (d < 60) return `${Math.floor(d)}s`;
  if (d < 3600) return `${Math.floor(d / 60)}m`;
  if (d < 86400) return `${Math.floor(d / 3600)}h`;
  if (d < 86400 * 60) return `${Math.floor(d / 86400)}d`;
  if (d < 86400 * 730) return `${Math.floor(d / (86400 * 30))}mo`;
  return `${Math.floor(d / (86400 * 365))}y`;
}

// The one date format of the UI: "2026-11-30 14:05 UTC" (a time zone everyone reads alike).
export function dateTime(seconds: number): string {
  if (!seconds) return '';
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

// "3h ago" (relative; the date itself is dateTime, shown on hover by <When>).
export function ago(seconds: number, now = Date.now() / 1000): string {
  return seconds ? `${age(seconds, now)} ago` : '';
}

export function duration(seconds: number): string {
  if (!(seconds >= 0)) return '';
  if (seconds < 10) return `${seconds.toFixed(2)}s`;
  if (seconds < 120) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 120) return `${m}m ${Math.round(seconds - m * 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function percent(x: number): string {
  if (x === 0) return '0%';
  if (x < 0.01) return `${(x * 100).toFixed(2)}%`;
  if (x < 0.1) return `${(x * 100).toFixed(1)}%`;
  return `${Math.round(x * 100)}%`;
}

// "12% (3%–30%)": the estimate and its 95% interval; "—" without runs.
export function rateText(rate: Rate, runs: number): string {
  if (runs === 0) return '—';
  return `${percent(rate.estimate)} (${percent(rate.low)}–${percent(rate.high)})`;
}

// The colour class of a failure rate: `pass` without failures, f1..f5 by the failed fraction,
// `none` without runs.
export function rateClass(runs: number, failures: number): string {
  if (runs === 0) return 'none';
  if (failures === 0) return 'pass';
  const f = failures / runs;
  if (f >= 0.999) return 'f5';
  if (f >= 0.5) return 'f4';
  if (f >= 0.2) return 'f3';
  if (f >= 0.05) return 'f2';
  return 'f1';
}

// The colour class of a cell from the statistics' model: its classification and the failure rate
// of its segment (the runs pooled between two probable changes), not this commit's raw counts. A
// single failure of a known 20% flake is coloured as a 20% flake, never as "always failing" (f5,
// which only a broken verdict gets). Without a classification: the raw counts (rateClass).
export function modelClass(c: Classification | null | undefined, runs: number, failures: number): string {
  const rate = c?.rate;
  switch (c?.verdict) {
    case 'good':
    case 'fixed':
      return 'pass';
    case 'broken':
      return 'f5';
    case 'flaky':
      return rate ? flakyClass(rate.estimate) : 'f2';
    case 'new':
      if (!rate || rate.runs === 0) return rateClass(runs, failures);
      if (rate.estimate < 0.005) return 'pass';
      return rate.estimate >= 0.99 ? 'f5' : flakyClass(rate.estimate);
    default:
      return rateClass(runs, failures);
  }
}

function flakyClass(estimate: number): string {
  if (estimate >= 0.5) return 'f4';
  if (estimate >= 0.2) return 'f3';
  if (estimate >= 0.05) return 'f2';
  return 'f1';
}

// "≈20% (5%–45%)": the model's rate at a commit with its interval; "" without one.
export function modelRateText(c: Classification | null | undefined): string {
  const r = c?.rate;
  if (!r || r.runs === 0) return '';
  return `≈${percent(r.estimate)} (${percent(r.low)}–${percent(r.high)}) over ${r.runs} runs`;
}

export const paths = {
  repo: (repo: string) => `/repos/${encodeURIComponent(repo)}`,
  branch: (repo: string, branch: string) =>
    `/repos/${encodeURIComponent(repo)}/branches/${encodePath(branch)}`,
  // One test's (or "test::case"'s) history along a branch.
  testHistory: (repo: string, branch: string, test: string) =>
    `/repos/${encodeURIComponent(repo)}/branches/${encodePath(branch)}/tests/${encodePath(test)}`,
  changes: (repo: string, branch: string) =>
    `/repos/${encodeURIComponent(repo)}/branches/${encodePath(branch)}/changes`,
  commit: (repo: string, sha: string) => `/repos/${encodeURIComponent(repo)}/commits/${sha}`,
  test: (repo: string, sha: string, name: string) =>
    `/repos/${encodeURIComponent(repo)}/commits/${sha}/tests/${encodePath(name)}`,
  run: (id: string) => `/runs/${encodeURIComponent(id)}`,
  deployment: (id: string) => `/deployments/${encodeURIComponent(id)}`,
  workers: () => '/workers',
};
