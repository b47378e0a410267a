import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, IsNull } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { ServerConfig } from '../config/server-config';
import { Actor, SYSTEM_ACTOR } from './actor';
import { ApiToken } from './api-token.entity';
import { generateSecret, hashSecret } from './secrets';
import { Role } from './role.enum';

/** Token state changes are rare and operator-driven; last use is recorded at most once a minute. */
const LAST_USED_RESOLUTION_MS = 60_000;

@Injectable()
export class TokensService implements OnApplicationBootstrap {
  private readonly logger = new Logger(TokensService.name);
  private readonly lastUsedWritten = new Map<string, number>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly config: ServerConfig,
  ) {}

  /** COWROOT_ADMIN_TOKEN is an admin token from the start (added if new: how an operator who lost one gets in). */
  async onApplicationBootstrap(): Promise<void> {
    if (this.config.adminToken) await this.ensureBootstrapAdmin();
  }

  /**
   * Makes sure an admin can log in: COWROOT_ADMIN_TOKEN, or, when no admin token exists, a generated one
   * that is returned (never logged here) for startServer to print once the server listens.
   */
  async ensureBootstrapAdmin(): Promise<string | null> {
    const repo = this.dataSource.getRepository(ApiToken);
    if (this.config.adminToken) {
      const hash = hashSecret(this.config.adminToken);
      const existing = await repo.createQueryBuilder('t').where('t.token_hash = :hash', { hash }).getOne();
      if (!existing) await this.insert('bootstrap-admin', Role.Admin, hash, SYSTEM_ACTOR);
      return null;
    }
    const admins = await repo.count({ where: { role: Role.Admin, revokedAt: IsNull() } });
    if (admins > 0) return null;
    const token = generateSecret();
    await this.insert('bootstrap-admin', Role.Admin, hashSecret(token), SYSTEM_ACTOR);
    this.logger.warn('generated the bootstrap admin token: it is printed once, at the end of the start');
    return token;
  }

  async create(name: string, role: Role, actor: Actor): Promise<{ token: ApiToken; secret: string }> {
    const secret = generateSecret();
    const token = await this.insert(name, role, hashSecret(secret), actor);
    return { token, secret };
  }

  private async insert(name: string, role: Role, tokenHash: string, actor: Actor): Promise<ApiToken> {
    return this.dataSource.transaction(async (manager) => {
      const token = await manager.save(
        manager.create(ApiToken, { name, role, tokenHash, createdBy: actor.id, revokedAt: null, lastUsedAt: null }),
      );
      await this.audit.record(
        { actor, action: 'token.created', subjectType: 'token', subjectId: token.id, after: { name, role } },
        manager,
      );
      return token;
    });
  }

  list(): Promise<ApiToken[]> {
    return this.dataSource.getRepository(ApiToken).find({ order: { createdAt: 'ASC' } });
  }

  async revoke(id: string, actor: Actor): Promise<ApiToken> {
    return this.dataSource.transaction(async (manager) => {
      const token = await manager.findOne(ApiToken, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!token) throw new DomainError(DomainErrorCode.TokenNotFound, `token ${id} not found`);
      if (token.revokedAt) return token;
      if (token.role === Role.Admin) {
        const activeAdmins = await manager.count(ApiToken, { where: { role: Role.Admin, revokedAt: IsNull() } });
        if (activeAdmins <= 1) {
          throw new DomainError(DomainErrorCode.LastAdminToken, 'refusing to revoke the last active admin token');
        }
      }
      token.revokedAt = new Date();
      await manager.save(token);
      await this.audit.record(
        {
          actor,
          action: 'token.revoked',
          subjectType: 'token',
          subjectId: id,
          before: { revokedAt: null },
          after: { revokedAt: token.revokedAt },
        },
        manager,
      );
      return token;
    });
  }

  /** The actor for a bearer secret, or null when it is unknown or revoked. */
  async authenticate(secret: string): Promise<Actor | null> {
    const token = await this.dataSource
      .getRepository(ApiToken)
      .createQueryBuilder('t')
      .where('t.token_hash = :hash', { hash: hashSecret(secret) })
      .andWhere('t.revoked_at IS NULL')
      .getOne();
    if (!token) return null;
    this.touch(token.id);
    return { type: 'operator', id: token.id, name: token.name, role: token.role };
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWritten.get(id) ?? 0) < LAST_USED_RESOLUTION_MS) return;
    this.lastUsedWritten.set(id, now);
    this.dataSource
      .getRepository(ApiToken)
      .update({ id }, { lastUsedAt: new Date(now) })
      .catch((error: Error) => this.logger.warn(`could not record token use: ${error.message}`));
  }
}
