import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { isEmptySelector, selectorCondition } from './device-selector';
import { SelectorPreviewDto, SelectorPreviewRequestDto } from './dto/selector-preview.dto';

/**
 * What a selector would target, for the create-rollout form's live preview: the same WHERE condition the
 * planner uses (device-selector.ts), so the preview and the plan cannot disagree.
 */
@Injectable()
export class SelectorPreviewService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async preview(request: SelectorPreviewRequestDto): Promise<SelectorPreviewDto> {
    if (isEmptySelector(request.selector)) {
      throw new DomainError(
        DomainErrorCode.RolloutSelectorEmpty,
        'the selector targets nothing: give tags, deviceIds, a filter or all',
      );
    }
    const release = request.release ? `${request.release.name}@${request.release.version}` : null;
    const condition = selectorCondition(request.selector, 'd', 2);
    const [counts] = (await this.dataSource.query(
      `SELECT count(*)::int AS targeted, count(*) FILTER (WHERE d.booted_release = $1)::int AS already
         FROM devices d WHERE ${condition.sql}`,
      [release, ...condition.params],
    )) as Array<{ targeted: number; already: number }>;
    const sampleCondition = selectorCondition(request.selector, 'd', 1);
    const sample = (await this.dataSource.query(
      `SELECT d.id FROM devices d WHERE ${sampleCondition.sql} ORDER BY d.id LIMIT 10`,
      sampleCondition.params,
    )) as Array<{ id: string }>;
    return { targeted: counts.targeted, alreadyRunning: counts.already, sample: sample.map((row) => row.id) };
  }
}
