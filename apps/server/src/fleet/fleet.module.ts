import { Module } from '@nestjs/common';
import { FleetController } from './fleet.controller';
import { FleetSummaryService } from './fleet-summary.service';

/** The fleet overview of the dashboard: aggregate reads only. */
@Module({ controllers: [FleetController], providers: [FleetSummaryService] })
export class FleetModule {}
