import type { CategoriesService } from '../categories/categories.service';
import { InactiveCategoryError } from '../categories/categories.error';
import type { FrameRequester } from '../samples/frame-requester';
import type { CorrectionRow } from './correction.dto';
import { DetectionNotFoundError } from './corrections.error';
import type { CorrectionsRepository } from './corrections.repository';
import { CorrectionsService } from './corrections.service';

const correctionRow = (detectionId: bigint, category: string, by: string, requestId: string): CorrectionRow => ({
  id: 1n,
  detection_id: detectionId,
  device_id: 'cam-1',
  frame_id: 'f9',
  previous_category: 'milk',
  category,
  corrected_by: by,
  corrected_at: new Date('2026-12-01T10:00:00Z'),
  moved_state: true,
  request_id: requestId,
  frame_status: 'requested',
  sample_id: null,
});

/** Detections the repository knows (by id); corrections it recorded. */
class FakeCorrections implements Pick<CorrectionsRepository, 'correct' | 'forDetections'> {
  readonly detections = new Set<bigint>([7n]);
  readonly recorded: CorrectionRow[] = [];

  correct(id: bigint, category: string, by: string, requestId: string): Promise<CorrectionRow | undefined> {
    if (!this.detections.has(id)) return Promise.resolve(undefined);
    const row = correctionRow(id, category, by, requestId);
    this.recorded.push(row);
    return Promise.resolve(row);
  }

  forDetections(ids: bigint[]): Promise<CorrectionRow[]> {
    return Promise.resolve(this.recorded.filter((r) => ids.includes(r.detection_id)));
  }
}

describe(CorrectionsService.name, () => {
  let repo: FakeCorrections;
  let requests: Array<{ purpose: string; requestId: string; deviceId: string; frameId: string }>;
  let active: Set<string>;
  let sut: CorrectionsService;

  beforeEach(() => {
    repo = new FakeCorrections();
    requests = [];
    active = new Set(['milk', 'bread']);
    const categories: Pick<CategoriesService, 'assertActive'> = {
      assertActive: (name) => (active.has(name) ? Promise.resolve() : Promise.reject(new InactiveCategoryError(name, false))),
    };
    const frames: Pick<FrameRequester, 'send'> = {
      send: (purpose, req) => {
        requests.push({ purpose, ...req });
        return Promise.resolve(true);
      },
    };
    sut = new CorrectionsService(repo as unknown as CorrectionsRepository, categories as CategoriesService, frames as FrameRequester);
  });

  it('records the correction, then asks the device for the frame under the same request id', async () => {
    const dto = await sut.correct(7n, 'bread', 'key:ops');
    expect(dto).toMatchObject({ detectionId: '7', category: 'bread', correctedBy: 'key:ops', frameStatus: 'requested' });
    expect(requests).toEqual([{ purpose: 'correction', requestId: repo.recorded[0]!.request_id, deviceId: 'cam-1', frameId: 'f9' }]);
    expect(repo.recorded[0]!.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await sut.forDetection(7n)).map((c) => c.category)).toEqual(['bread']);
  });

  it('refuses a category that is not active before recording anything or asking for a frame', async () => {
    await expect(sut.correct(7n, 'caviar', 'key:ops')).rejects.toThrow(InactiveCategoryError);
    expect(repo.recorded).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('answers 404 for an unknown detection and asks no device for a frame', async () => {
    await expect(sut.correct(8n, 'bread', 'key:ops')).rejects.toThrow(DetectionNotFoundError);
    expect(requests).toEqual([]);
  });
});
