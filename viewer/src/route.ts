/**
 * What the page's address asks for: `?view=grid`, `?view=single&camera=<id>`, plus the older `?camera=<id>`
 * (single view of that camera), `?autoconnect=1` and `?relay=1`.
 */
export type ViewMode = 'grid' | 'single';

export interface Route {
  /** null: not asked for, decided once the rover's cameras are known (grid when it has several). */
  view: ViewMode | null;
  /** null: not asked for (the rover's "main" camera, or its first). */
  camera: string | null;
  autoconnect: boolean;
  relayOnly: boolean;
}

export function readRoute(search: string): Route {
  const params = new URLSearchParams(search);
  const view = params.get('view');
  return {
    view: view === 'grid' || view === 'single' ? view : null,
    camera: params.get('camera') || null,
    autoconnect: params.get('autoconnect') === '1',
    relayOnly: params.get('relay') === '1',
  };
}

/** The address for a view the person chose, keeping the page's other parameters. */
export function routeUrl(current: string, view: ViewMode, camera: string | null): string {
  const url = new URL(current);
  url.searchParams.set('view', view);
  if (view === 'single' && camera !== null) url.searchParams.set('camera', camera);
  else url.searchParams.delete('camera');
  return url.pathname + url.search;
}
