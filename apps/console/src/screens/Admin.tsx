import { useState } from 'react';
import { AdminAudit } from './AdminAudit';
import { AdminDevices } from './AdminDevices';
import { AdminKeys } from './AdminKeys';

const TABS = [
  { id: 'keys', title: 'API keys', component: AdminKeys },
  { id: 'devices', title: 'Devices', component: AdminDevices },
  { id: 'audit', title: 'Audit log', component: AdminAudit },
] as const;

/** Admin (admin role): API keys, device credentials, the audit log. */
export default function AdminScreen() {
  const [tab, setTab] = useState<(typeof TABS)[number]['id']>('keys');
  const Current = TABS.find((t) => t.id === tab)!.component;
  return (
    <section>
      <h1>Admin</h1>
      <div className="tabs" role="tablist">
        {TABS.map((t) => (
          <button key={t.id} type="button" role="tab" aria-selected={t.id === tab} className={t.id === tab ? 'active' : undefined} onClick={() => setTab(t.id)}>
            {t.title}
          </button>
        ))}
      </div>
      <Current />
    </section>
  );
}
