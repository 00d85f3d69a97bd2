import { ApiProperty } from '@nestjs/swagger';

export class DeviceDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'robot, drone, camera, sim or unknown' }) kind!: string;
  @ApiProperty({ nullable: true, type: String }) site!: string | null;
  @ApiProperty({ description: 'true between a birth/heartbeat and a death (clean stop or last will)' }) online!: boolean;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) lastSeenAt!: string | null;
  @ApiProperty({ nullable: true, type: String }) agentVersion!: string | null;
  @ApiProperty({ nullable: true, type: String }) backboneId!: string | null;
  @ApiProperty({ nullable: true, type: String }) modelVersion!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'sequence epoch of the device\'s outbox, from its last birth' }) epoch!: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    description: 'when the device last came back with a new epoch: its storage was reset and detections it had not delivered are lost',
  })
  epochChangedAt!: string | null;
  @ApiProperty({ nullable: true, type: Object }) lastHeartbeat!: Record<string, unknown> | null;
}
