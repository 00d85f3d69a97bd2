import { Injectable } from '@nestjs/common';
import { CategoriesService } from '../categories/categories.service';
import { FrameRequester } from '../samples/frame-requester';
import { type CorrectionDto, toCorrectionDto } from './correction.dto';
import { DetectionNotFoundError } from './corrections.error';
import { CorrectionsRepository } from './corrections.repository';

/**
 * Operators' corrections of detections: record and (when current) move the state in one
 * transaction, then ask the device for the frame; its reply becomes a labelled sample
 * (the sample writer finds the correction by request id), or `not_held`.
 */
@Injectable()
export class CorrectionsService {
  constructor(
    private readonly repo: CorrectionsRepository,
    private readonly categories: CategoriesService,
    private readonly frames: FrameRequester,
  ) {}

  async correct(detectionId: bigint, category: string, by: string): Promise<CorrectionDto> {
    await this.categories.assertActive(category);
    const requestId = FrameRequester.newRequestId();
    const row = await this.repo.correct(detectionId, category, by, requestId);
    if (!row) throw new DetectionNotFoundError(detectionId);
    await this.frames.send('correction', { requestId, deviceId: row.device_id, frameId: row.frame_id });
    return toCorrectionDto(row);
  }

  async forDetection(detectionId: bigint): Promise<CorrectionDto[]> {
    return (await this.repo.forDetections([detectionId])).map(toCorrectionDto);
  }
}
