import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

export interface ReleaseBase {
  version: string;
  devices: number;
}

/**
 * Which releases of a name the targeted devices hold (issue 14, docs/release-tool.md "Deltas for what
 * the fleet holds"): the parents worth building incremental and delta artifacts against. A device holds a
 * release when its reported inventory has a read-only snapshot whose received_uuid is the release's
 * snapshot uuid — exactly what lets btrfs receive apply a stream built against it.
 */
@Injectable()
export class ReleaseBasesService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async bases(name: string, tags: string[] = []): Promise<ReleaseBase[]> {
    const rows = (await this.dataSource.query(
      `SELECT r.version, count(DISTINCT d.id)::int AS devices
         FROM devices d
         CROSS JOIN LATERAL jsonb_array_elements(d.snapshots) AS s
         JOIN releases r ON r.snapshot_uuid = s->>'receivedUuid'
        WHERE d.status = 'active'
          AND r.name = $1
          AND s->>'readOnly' = 'true'
          AND d.tags @> $2::text[]
        GROUP BY r.version
        ORDER BY devices DESC, r.version`,
      [name, tags],
    )) as { version: string; devices: number }[];
    return rows.map((row) => ({ version: row.version, devices: Number(row.devices) }));
  }
}
