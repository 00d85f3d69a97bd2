import { useEffect, useState } from 'react';
import { authHeaders } from '../api/client';

/** An image from the API (which needs the key header, so no plain `<img src>`). */
export function AuthImage({ path, alt, className }: { path: string; alt: string; className?: string }) {
  const [src, setSrc] = useState<string>();
  useEffect(() => {
    let url: string | undefined;
    let live = true;
    void fetch(new URL(path.replace(/^\//, ''), window.location.href), { headers: authHeaders() })
      .then((r) => (r.ok ? r.blob() : undefined))
      .then((b) => {
        if (b && live) setSrc((url = URL.createObjectURL(b)));
      });
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [path]);
  return src ? <img src={src} alt={alt} className={className} /> : <span className={className} />;
}
