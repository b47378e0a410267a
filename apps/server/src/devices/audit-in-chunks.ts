import { EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';

/** PostgreSQL takes at most 65535 bind parameters per statement; an audit row uses 11. */
const AUDIT_ROWS_PER_INSERT = 2000;

/** AuditService.recordMany in inserts small enough for the protocol, inside the caller's transaction. */
export async function recordAuditInChunks(audit: AuditService, entries: AuditEntryInput[], manager: EntityManager): Promise<void> {
  for (let i = 0; i < entries.length; i += AUDIT_ROWS_PER_INSERT) {
    await audit.recordMany(entries.slice(i, i + AUDIT_ROWS_PER_INSERT), manager);
  }
}
