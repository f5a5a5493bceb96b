import { useEffect, useState } from "react";

import { buildAuthorizeUrl, fetchProviderAccount, type Provider } from "@/lib/integrations";

type Props = {
  provider: Provider;
  connected: boolean;
  onConnected: (accountName: string) => void;
};

export function ConnectProviderButton({ provider, connected, onConnected }: Props) {
  const [waiting, setWaiting] = useState(false);

  useEffect(() => {
    if (!waiting) return;
    function handleMessage(event: MessageEvent) {
      if (event.origin !== window.location.origin) return;
      if (event.data?.type !== "oauth:connected" || event.data.provider !== provider.id) return;
      setWaiting(false);
      void fetchProviderAccount(provider, event.data.accessToken).then((account) => onConnected(account.name));
    }
    window.addEventListener("message", handleMessage);
    return () => window.removeEventListener("message", handleMessage);
  }, [waiting, provider, onConnected]);

  if (connected) {
    return <span className="badge badge--success">Connected</span>;
  }

  return (
    <button
      type="button"
      className="button"
      disabled={waiting}
      onClick={() => {
        window.open(buildAuthorizeUrl(provider), "oauth", "popup,width=520,height=680");
        setWaiting(true);
      }}
    >
      {waiting ? "Waiting for the provider…" : `Connect ${provider.label}`}
    </button>
  );
}
