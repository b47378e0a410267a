/** Operator roles, weakest first: each role may do everything the ones before it may. */
export enum Role {
  Viewer = 'viewer',
  Operator = 'operator',
  Admin = 'admin',
}

const RANK: Record<Role, number> = { [Role.Viewer]: 0, [Role.Operator]: 1, [Role.Admin]: 2 };

export function roleSatisfies(held: Role, required: Role): boolean {
  return RANK[held] >= RANK[required];
}
