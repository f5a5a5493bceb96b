import { useState, type FormEvent } from "react";

import { updateCustomer } from "@/api/customers";
import type { Customer } from "@/types/customer";

import styles from "./CustomerPanel.module.css";

type Props = {
  customer: Customer;
  onSaved: (customer: Customer) => void;
};

export function CustomerPanel({ customer, onSaved }: Props) {
  const [name, setName] = useState(customer.name);
  const [email, setEmail] = useState(customer.email);
  const [phone, setPhone] = useState(customer.phone ?? "");
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const saved = await updateCustomer(customer.id, { name, email, phone: phone || null });
      onSaved(saved);
    } catch {
      setError("Could not save the customer. Try again.");
    } finally {
      setSaving(false);
    }
  }

  return (
    <aside className={styles.panel} aria-labelledby="customer-panel-title">
      <h2 id="customer-panel-title">{customer.name}</h2>
      <form className={styles.fields} onSubmit={handleSubmit}>
        <label>
          Name
          <input value={name} onChange={(event) => setName(event.target.value)} required />
        </label>
        <label>
          Email
          <input type="email" value={email} onChange={(event) => setEmail(event.target.value)} required />
        </label>
        <label>
          Phone
          <input type="tel" value={phone} onChange={(event) => setPhone(event.target.value)} />
        </label>
        <p className={styles.meta}>Customer since {new Date(customer.createdAt).toLocaleDateString()}</p>
        {error && <p role="alert">{error}</p>}
        <button type="submit" disabled={saving}>
          {saving ? "Saving…" : "Save changes"}
        </button>
      </form>
    </aside>
  );
}
