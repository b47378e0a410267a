import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApiToken } from './api-token.entity';
import { AuthGuard } from './auth.guard';
import { LoginThrottle } from './login-throttle';
import { TokensController } from './tokens.controller';
import { TokensService } from './tokens.service';
import { SessionController } from './session.controller';
import { WebSessionsService } from './web-sessions.service';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([ApiToken])],
  controllers: [TokensController, SessionController],
  providers: [TokensService, LoginThrottle, WebSessionsService, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [TokensService, LoginThrottle],
})
export class AuthModule {}
