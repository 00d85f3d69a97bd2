import { useState } from 'react';

/**
 * A secret the hub shows only once (a new API key, a device password): displayed with a copy
 * button and a plain warning, until the admin dismisses it. Nothing keeps it afterwards.
 */
export function ShownOnce({ label, value, onDismiss, testId }: { label: string; value: string; onDismiss: () => void; testId?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
    } catch {
      setCopied(false); // clipboard refused (no permission, not a secure context): the text stays selectable
    }
  };
  return (
    <div className="shown-once" role="alert">
      <p>
        <strong>{label}</strong> — shown only now; the hub keeps no copy. Store it before closing this.
      </p>
      <div className="toolbar">
        <code className="secret" data-testid={testId} onFocus={(e) => window.getSelection()?.selectAllChildren(e.currentTarget)} tabIndex={0}>
          {value}
        </code>
        <button type="button" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" onClick={onDismiss}>
          I have stored it
        </button>
      </div>
    </div>
  );
}

/** Offer text as a file download (a device's settings, the trusted-keys file). */
export function DownloadText({ name, text, children }: { name: string; text: string; children: string }) {
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <button type="button" onClick={download}>
      {children}
    </button>
  );
}
