import { lazy, type ComponentType, type LazyExoticComponent } from 'react';
import type { Role } from './auth';

export interface Screen {
  /** Hash path, e.g. `/inventory` (the page lives at `/#/inventory`; API paths are never shadowed). */
  path: string;
  /** Nav label. */
  title: string;
  /** Least role that sees the screen in the nav and may open it. */
  role: Role;
  component: LazyExoticComponent<ComponentType>;
}

/**
 * The console's screens, in nav order. A new screen is one line here (its module default-
 * exports the component; it is loaded on first visit, so the first page stays small).
 * Routes with parameters (`/locations/:code`) go in `routes` below.
 */
export const SCREENS: Screen[] = [
  { path: '/inventory', title: 'Inventory', role: 'viewer', component: lazy(() => import('./screens/Inventory')) },
  { path: '/locations', title: 'Locations', role: 'viewer', component: lazy(() => import('./screens/Locations')) },
  { path: '/fleet', title: 'Fleet', role: 'viewer', component: lazy(() => import('./screens/Fleet')) },
  { path: '/labelling', title: 'Labelling', role: 'operator', component: lazy(() => import('./screens/Labelling')) },
  { path: '/training', title: 'Training', role: 'operator', component: lazy(() => import('./screens/Training')) },
  { path: '/models', title: 'Models', role: 'operator', component: lazy(() => import('./screens/Models')) },
  { path: '/rollouts', title: 'Rollouts', role: 'operator', component: lazy(() => import('./screens/Rollouts')) },
  { path: '/admin', title: 'Admin', role: 'admin', component: lazy(() => import('./screens/Admin')) },
];

/** Routes not in the nav (detail pages). */
export const ROUTES: Array<Omit<Screen, 'title'>> = [
  { path: '/locations/:site/:code', role: 'viewer', component: lazy(() => import('./screens/Location')) },
  { path: '/models/:version', role: 'operator', component: lazy(() => import('./screens/Models')) },
  { path: '/rollouts/:id', role: 'operator', component: lazy(() => import('./screens/RolloutDetail')) },
];
