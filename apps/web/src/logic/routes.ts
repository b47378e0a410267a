export type Route =
  | { page: 'fleet' }
  | { page: 'login' }
  | { page: 'rollouts' }
  | { page: 'rollout-new' }
  | { page: 'rollout'; id: string }
  | { page: 'devices' }
  | { page: 'device'; id: string }
  | { page: 'releases' }
  | { page: 'audit' }
  | { page: 'admin' }
  | { page: 'not-found'; path: string };

/** The page for a location path (the server answers every such path with index.html). */
export function matchRoute(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third] = parts;
  if (parts.length === 0) return { page: 'fleet' };
  if (third === undefined) {
    if (first === 'login' && !second) return { page: 'login' };
    if (first === 'rollouts') {
      if (!second) return { page: 'rollouts' };
      return second === 'new' ? { page: 'rollout-new' } : { page: 'rollout', id: second };
    }
    if (first === 'devices') return second ? { page: 'device', id: second } : { page: 'devices' };
    if (!second && (first === 'releases' || first === 'audit' || first === 'admin')) return { page: first };
  }
  return { page: 'not-found', path: pathname };
}

export function routePath(route: Route): string {
  switch (route.page) {
    case 'fleet':
      return '/';
    case 'rollout':
      return `/rollouts/${encodeURIComponent(route.id)}`;
    case 'rollout-new':
      return '/rollouts/new';
    case 'device':
      return `/devices/${encodeURIComponent(route.id)}`;
    case 'not-found':
      return route.path;
    default:
      return `/${route.page}`;
  }
}
