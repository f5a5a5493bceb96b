import { useState } from "react";

import { CustomerPanel } from "@/components/customers/CustomerPanel";
import { CustomerTable } from "@/components/customers/CustomerTable";
import { useCustomers } from "@/hooks/useCustomers";
import type { Customer } from "@/types/customer";

export function CustomersPage() {
  const { customers, loading, replaceCustomer } = useCustomers();
  const [selectedId, setSelectedId] = useState<Customer["id"] | null>(null);
  const selected = customers.find((customer) => customer.id === selectedId) ?? null;

  return (
    <div className="customers-layout">
      <CustomerTable
        customers={customers}
        loading={loading}
        selectedId={selectedId}
        onSelect={setSelectedId}
      />
      {selected && <CustomerPanel customer={selected} onSaved={replaceCustomer} />}
    </div>
  );
}
