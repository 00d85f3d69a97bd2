import { ApiProperty } from '@nestjs/swagger';

export class CredentialStatusDto {
  @ApiProperty() deviceId!: string;
  @ApiProperty({ description: 'false once disabled; a disabled device is refused at its next connect' }) enabled!: boolean;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'when the current password was generated' }) rotatedAt!: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) disabledAt!: string | null;
}

export class IssuedCredentialDto extends CredentialStatusDto {
  @ApiProperty({ description: 'MQTT username (= the device id = the MQTT client id)' }) username!: string;
  @ApiProperty({ description: 'MQTT password; shown only in this response, never stored or shown again' }) password!: string;
}
