import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiExtraModels, ApiOkResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { Response } from 'express';
import { once } from 'node:events';
import { AuditService } from './audit.service';
import { AUDIT_CSV_HEADER, csvRow } from './audit-export';
import { AuditEntryDto, AuditPageDto } from './dto/audit-entry.dto';
import { AuditExportQueryDto, AuditQueryDto } from './dto/audit-query.dto';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';

@ApiTags('audit')
@ApiExtraModels(AuditEntryDto)
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiOkResponse({ type: AuditPageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor)
  async query(@Query() query: AuditQueryDto): Promise<AuditPageDto> {
    const { limit, cursor, ...filter } = query;
    const page = await this.audit.query(filter, limit ?? 100, cursor);
    return { items: page.items.map((entry) => AuditEntryDto.from(entry)), nextCursor: page.nextCursor };
  }

  /** Streams the whole filtered log, oldest first, as CSV or a JSON array. */
  @Get('export')
  @ApiOkResponse({
    description: 'every matching entry, oldest first, streamed (never buffered by the server)',
    content: {
      'application/json': { schema: { type: 'array', items: { $ref: getSchemaPath(AuditEntryDto) } } },
      'text/csv': { schema: { type: 'string', description: `header: ${AUDIT_CSV_HEADER.trim()}` } },
    },
  })
  @ApiErrors(E.Invalid)
  async export(@Query() query: AuditExportQueryDto, @Res() res: Response): Promise<void> {
    const { format = 'json', ...filter } = query;
    const csv = format === 'csv';
    res.status(200);
    res.setHeader('Content-Type', csv ? 'text/csv; charset=utf-8' : 'application/json');
    res.setHeader('Content-Disposition', `attachment; filename="cowroot-audit.${csv ? 'csv' : 'json'}"`);
    const write = async (chunk: string) => {
      if (!res.write(chunk)) await once(res, 'drain');
    };
    await write(csv ? AUDIT_CSV_HEADER : '[');
    let first = true;
    for await (const entry of this.audit.scan(filter)) {
      if (res.destroyed) return;
      const dto = AuditEntryDto.from(entry);
      await write(csv ? csvRow(dto) : `${first ? '' : ','}\n${JSON.stringify(dto)}`);
      first = false;
    }
    res.end(csv ? '' : '\n]\n');
  }
}
