import { EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';

/** PostgreSQL allows 65535 parameters per statement; an audit row takes 11. */
const AUDIT_ROWS_PER_INSERT = 2000;

/** Records many audit entries in the caller's transaction, in inserts small enough for the driver. */
export async function recordAuditInChunks(audit: AuditService, manager: EntityManager, entries: AuditEntryInput[]): Promise<void> {
  for (let i = 0; i < entries.length; i += AUDIT_ROWS_PER_INSERT) {
    await audit.recordMany(entries.slice(i, i + AUDIT_ROWS_PER_INSERT), manager);
  }
}
