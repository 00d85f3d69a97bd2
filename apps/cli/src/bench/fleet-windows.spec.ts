import { fleetWindowsSvg, overloadVerdict, percentile, slope, summarizeWindows, type FleetWindow } from './fleet-windows';

function win(from_s: number, stored_per_s: number, hub_rss_mb: number | null = 300, over: Partial<FleetWindow> = {}): FleetWindow {
  return {
    from_s,
    seconds: 10,
    offered: 2000 * 10,
    stored: stored_per_s * 10,
    retransmitted: 0,
    sent: 2000 * 10,
    detections_per_message: 1.5,
    offered_per_s: 2000,
    stored_per_s,
    hub_rss_mb,
    pending: 100,
    pending_bytes: 40_000,
    hub_queue_bytes: 0,
    broker_backlog: 0,
    deferred: 0,
    fleet_unacked: 0,
    inventory_p95_ms: 20,
    inventory_requests: 20,
    capture_to_state_p95_ms: 400,
    ...over,
  };
}

describe('fleet windows', () => {
  it('takes nearest-rank percentiles and least-squares slopes', () => {
    expect(percentile([5, 1, 4, 2, 3], 0.95)).toBe(5);
    expect(percentile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(percentile([], 0.5)).toBeNull();
    expect(slope([[0, 1], [1, 3], [2, 5]])).toBeCloseTo(2);
    expect(slope([[0, 1]])).toBeNull();
  });

  it('summarizes medians and the worst window', () => {
    const sut = summarizeWindows([win(0, 1000, 280), win(10, 400, 350, { inventory_p95_ms: 900 }), win(20, 1100, 300)]);
    expect(sut.median.stored_per_s).toBe(1000);
    expect(sut.worst.stored_per_s).toBe(400);
    expect(sut.worst.hub_rss_mb).toBe(350);
    expect(sut.worst.inventory_p95_ms).toBe(900);
    expect(sut.worst.stored_to_offered).toBe(0.2);
    expect(sut.worst_window?.from_s).toBe(10);
  });

  it('passes a hub that keeps its goodput and memory when offered twice its capacity', () => {
    const sut = overloadVerdict([win(0, 300, 250), win(10, 950, 300), win(20, 930, 305), win(30, 960, 300)], 1000);
    expect(sut.ok).toBe(true);
    expect(sut.lowest_goodput_fraction).toBe(0.93);
  });

  it('finds a collapse after the warm-up window', () => {
    const sut = overloadVerdict([win(0, 300), win(10, 950), win(20, 400), win(30, 200)], 1000);
    expect(sut.ok).toBe(false);
    expect(sut.collapsed_windows).toEqual([20, 30]);
    expect(sut.reasons.join()).toMatch(/collapse/);
  });

  it('finds memory that keeps growing', () => {
    const sut = overloadVerdict([win(0, 1000, 240), win(10, 1000, 400), win(20, 1000, 560), win(30, 1000, 720)], 1000);
    expect(sut.ok).toBe(false);
    expect(sut.hub_rss_slope_mb_per_min).toBeCloseTo(960);
    expect(sut.reasons.join()).toMatch(/RSS rising/);
  });

  it('does not judge a short last window', () => {
    const sut = overloadVerdict([win(0, 300), win(10, 950), win(20, 10, 300, { seconds: 1 })], 1000);
    expect(sut.ok).toBe(true);
  });

  it('draws the windows', () => {
    const svg = fleetWindowsSvg('2x capacity', [win(0, 900), win(10, 950)], 1000);
    expect(svg).toContain('<svg');
    expect(svg).toContain('stored /s');
    expect(svg).toContain('90% of capacity');
    expect((svg.match(/<polyline/g) ?? []).length).toBe(5);
  });
});
