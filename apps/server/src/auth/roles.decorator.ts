import { SetMetadata } from '@nestjs/common';
import { Role } from './role.enum';

export const MIN_ROLE_KEY = 'cowroot:min-role';

/** The weakest role allowed on a route; routes without it need Role.Viewer. */
export const Roles = (role: Role) => SetMetadata(MIN_ROLE_KEY, role);
