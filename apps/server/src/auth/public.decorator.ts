import { SetMetadata } from '@nestjs/common';

export const PUBLIC_KEY = 'cowroot:public';

/** The route needs no credential (health, metrics, docs). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
