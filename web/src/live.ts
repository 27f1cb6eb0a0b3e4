// useLive: data from the API that stays current. Loads once, then again (debounced, one request
// at a time) after every server event the page says is relevant, so no page needs a reload.
import { useEffect, useRef, useState } from 'preact/hooks';

import { onServerEvent, type ServerEvent } from './events';

export interface Live<T> {
  data: T | null;
  error: string | null;
  // performance.now() when the latest data arrived (parsed), for render timings.
  arrivedAt: number;
  reload: () => void;
}

const kDebounceMs = 120;

export function useLive<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  relevant: (event: ServerEvent) => boolean,
): Live<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; arrivedAt: number }>({
    data: null,
    error: null,
    arrivedAt: 0,
  });
  const reloadRef = useRef<() => void>(() => {});
  const relevantRef = useRef(relevant);
  relevantRef.current = relevant;

  useEffect(() => {
    let alive = true;
    let inFlight = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    // Big pages (the history grid) take longer; wait at least as long as the last load did.
    let lastCostMs = 0;
    setState({ data: null, error: null, arrivedAt: 0 });

    const fetchNow = async (): Promise<void> => {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      const started = performance.now();
      try {
        const data = await load();
        if (alive) setState({ data, error: null, arrivedAt: performance.now() });
      } catch (e) {
        if (alive) setState((s) => ({ ...s, error: e instanceof Error ? e.message : String(e) }));
      }
      lastCostMs = performance.now() - started;
      inFlight = false;
      if (again && alive) {
        again = false;
        schedule();
      }
    };
    const schedule = (): void => {
      if (timer !== null) return;
      timer = setTimeout(
        () => {
          timer = null;
          void fetchNow();
        },
        Math.max(kDebounceMs, lastCostMs),
      );
    };
    reloadRef.current = () => void fetchNow();
    const off = onServerEvent((e) => {
      if (e.type === 'reconnected' || relevantRef.current(e)) schedule();
    });
    void fetchNow();
    return () => {
      alive = false;
      off();
      if (timer !== null) clearTimeout(timer);
    };
  }, deps);

  return { ...state, reload: () => reloadRef.current() };
}
