import { useRef, useState, type ReactNode } from 'react';

/**
 * A button whose action runs only after the person confirms in a modal dialog (revoke a key,
 * abort a rollout). `onConfirm` may be async; its error is shown in the dialog.
 */
export function ConfirmButton({
  label,
  title,
  children,
  confirmLabel = label,
  danger = false,
  disabled = false,
  onConfirm,
}: {
  label: string;
  title: string;
  children: ReactNode;
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  onConfirm: () => Promise<string | undefined | void> | void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const err = await onConfirm();
      if (err) setError(err);
      else dialog.current?.close();
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={danger ? 'danger' : undefined} disabled={disabled} onClick={() => dialog.current?.showModal()}>
        {label}
      </button>
      <dialog ref={dialog} aria-label={title} onClose={() => setError(undefined)}>
        <h2>{title}</h2>
        <div>{children}</div>
        {error && <p className="error">{error}</p>}
        <div className="toolbar">
          <button type="button" className={danger ? 'danger' : undefined} disabled={busy} onClick={run}>
            {confirmLabel}
          </button>
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
        </div>
      </dialog>
    </>
  );
}
