import { DynamicModule, Module } from '@nestjs/common';
import { CHANGE_FEED_OPTIONS, ChangeFeedOptions, ChangeFeedService } from './change-feed.service';
import { EventsController } from './events.controller';

/** Live updates for the dashboard: the database change feed, streamed as Server-Sent Events. */
@Module({})
export class EventsModule {
  static forRoot(options: ChangeFeedOptions): DynamicModule {
    return {
      module: EventsModule,
      controllers: [EventsController],
      providers: [{ provide: CHANGE_FEED_OPTIONS, useValue: options }, ChangeFeedService],
      exports: [ChangeFeedService],
    };
  }
}
