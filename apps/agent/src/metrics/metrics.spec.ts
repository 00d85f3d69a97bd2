import { metricSum } from '@shelfsight/common';
import { AgentMetrics } from './metrics';

describe(AgentMetrics.name, () => {
  it('renders its counters, mirrors, gauges and histogram under their names (prom-client text)', async () => {
    const sut = new AgentMetrics();
    const kept = { sent: 7 };
    const samples: Record<string, number> = { audit: 2, sent: 1 };
    let depth = 3;
    sut.mirror('shelf_agent_detections_sent_total', 'Detections published', () => kept.sent);
    sut.mirror('shelf_agent_samples_total', 'Samples by outcome', () => samples);
    sut.gauge('shelf_agent_outbox_depth', 'Detections stored and not yet acknowledged', () => depth);
    sut.countFrame('detected');
    sut.countFrame('detected');
    sut.countFrame('rejected');
    sut.rejected.inc({ reason: 'decode', source: 'directory' });
    sut.dropped.inc({ reason: 'superseded' });
    sut.observeLatency(30);

    let text = await sut.render();
    expect(text).toMatch(/^# TYPE shelf_agent_frames_total counter$/m);
    expect(text).toMatch(/^shelf_agent_frames_total\{outcome="detected"\} 2$/m);
    expect(text).toMatch(/^shelf_agent_frames_total\{outcome="rejected"\} 1$/m);
    expect(text).toMatch(/^shelf_agent_frames_rejected_total\{reason="decode",source="directory"\} 1$/m);
    expect(text).toMatch(/^shelf_agent_frames_dropped_total\{reason="superseded"\} 1$/m);
    expect(text).toMatch(/^shelf_agent_detections_sent_total 7$/m);
    expect(text).toMatch(/^shelf_agent_samples_total\{outcome="audit"\} 2$/m);
    expect(text).toMatch(/^# TYPE shelf_agent_outbox_depth gauge$/m);
    expect(text).toMatch(/^shelf_agent_outbox_depth 3$/m);
    expect(text).toMatch(/^shelf_agent_classify_latency_seconds_bucket\{le="0.025"\} 0$/m);
    expect(text).toMatch(/^shelf_agent_classify_latency_seconds_bucket\{le="0.05"\} 1$/m);
    expect(text).toMatch(/^shelf_agent_classify_latency_seconds_count 1$/m);
    expect(text).toMatch(/^shelf_agent_classify_latency_seconds_sum 0.03$/m);
    // The process's standard metrics, and the peak RSS the benchmarks read.
    expect(metricSum(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metricSum(text, 'process_max_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metricSum(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^process_cpu_seconds_total /m);

    // Mirrors and gauges follow their source at every scrape.
    kept.sent = 9;
    samples.audit = 5;
    depth = 0;
    text = await sut.render();
    expect(text).toMatch(/^shelf_agent_detections_sent_total 9$/m);
    expect(metricSum(text, 'shelf_agent_samples_total', { outcome: 'audit' })).toBe(5);
    expect(metricSum(text, 'shelf_agent_samples_total')).toBe(6);
    expect(text).toMatch(/^shelf_agent_outbox_depth 0$/m);
    expect(sut.frames('detected')).toBe(2);
  });

  it('keeps the process metrics once when several agents share a process', async () => {
    const a = await new AgentMetrics().render();
    const b = await new AgentMetrics().render();
    for (const text of [a, b]) expect(text.match(/^# TYPE process_resident_memory_bytes gauge$/gm)).toHaveLength(1);
  });
});
