import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from './actor';
import { Role } from './role.enum';
import { generateSecret, hashSecret } from './secrets';

/** A browser session lasts a working day; logging in again makes a new one. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface WebSession {
  actor: Actor;
  csrfToken: string;
  expiresAt: Date;
}

/**
 * Dashboard sessions (migrations/1764800000000-dashboard.ts): the browser holds only the session id, in an
 * HttpOnly cookie, never the API token it logged in with. Rows are in the database so any replica answers
 * any session, and a session ends with its token: revoked tokens are joined out on every lookup.
 */
@Injectable()
export class WebSessionsService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** A new session for an authenticated operator; returns the cookie value (shown nowhere else). */
  async create(actor: Actor): Promise<{ sessionId: string; session: WebSession }> {
    const sessionId = generateSecret('cws_');
    const csrfToken = generateSecret('csrf_');
    const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
    await this.dataSource.query(`DELETE FROM web_sessions WHERE expires_at < now()`);
    await this.dataSource.query(
      `INSERT INTO web_sessions (id_hash, token_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)`,
      [hashSecret(sessionId), actor.id, csrfToken, expiresAt],
    );
    return { sessionId, session: { actor, csrfToken, expiresAt } };
  }

  async find(sessionId: string): Promise<WebSession | null> {
    const rows = (await this.dataSource.query(
      `SELECT s.csrf_token, s.expires_at, t.id, t.name, t.role
         FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id
        WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL`,
      [hashSecret(sessionId)],
    )) as Array<{ csrf_token: string; expires_at: Date; id: string; name: string; role: Role }>;
    const row = rows[0];
    if (!row) return null;
    return {
      actor: { type: 'operator', id: row.id, name: row.name, role: row.role },
      csrfToken: row.csrf_token,
      expiresAt: new Date(row.expires_at),
    };
  }

  async delete(sessionId: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM web_sessions WHERE id_hash = $1`, [hashSecret(sessionId)]);
  }
}
