import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { DeviceFeed } from '../devices/device-feed';
import { isEmptySelector } from './device-selector';
import { SelectorPreviewDto, SelectorPreviewRequestDto } from './dto/selector-preview.dto';

/**
 * What a selector would target, for the create-rollout form's live preview: the devices feature's
 * selection (DeviceFeed, the same condition the planner's statements use), so the preview and the plan
 * cannot disagree.
 */
@Injectable()
export class SelectorPreviewService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly devices: DeviceFeed,
  ) {}

  async preview(request: SelectorPreviewRequestDto): Promise<SelectorPreviewDto> {
    if (isEmptySelector(request.selector)) {
      throw new DomainError(
        DomainErrorCode.RolloutSelectorEmpty,
        'the selector targets nothing: give tags, deviceIds, a filter or all',
      );
    }
    const release = request.release ? `${request.release.name}@${request.release.version}` : null;
    const preview = await this.devices.preview(this.dataSource.manager, request.selector, release);
    return { targeted: preview.targeted, alreadyRunning: preview.already, sample: preview.sample };
  }
}
