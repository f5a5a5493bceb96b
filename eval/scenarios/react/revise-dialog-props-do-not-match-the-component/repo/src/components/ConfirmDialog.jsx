import { useEffect, useRef } from "react";

export function ConfirmDialog({ isOpen, title, message, onAccept, onDismiss }) {
  const ref = useRef(null);

  useEffect(() => {
    if (isOpen) ref.current?.showModal();
    else ref.current?.close();
  }, [isOpen]);

  return (
    <dialog ref={ref} onCancel={onDismiss}>
      <h2>{title}</h2>
      <p>{message}</p>
      <button onClick={onDismiss}>Cancel</button>
      <button className="danger" onClick={onAccept}>Confirm</button>
    </dialog>
  );
}
