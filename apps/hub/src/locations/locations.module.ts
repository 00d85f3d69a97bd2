import { Module } from '@nestjs/common';
import { CorrectionsModule } from '../corrections/corrections.module';
import { DisputesModule } from '../disputes/disputes.module';
import { LocationsController } from './locations.controller';
import { LocationsService } from './locations.service';

@Module({ imports: [DisputesModule, CorrectionsModule], controllers: [LocationsController], providers: [LocationsService] })
export class LocationsModule {}
