import { apiGet } from "./client";
import type { Order, OrderDetail, OrderStatus, Page } from "./types";

export type OrderOrdering = "created_at" | "-created_at" | "total" | "-total" | "number" | "-number";

export interface OrderFilters {
  status?: OrderStatus;
  placedFrom?: string; // YYYY-MM-DD
  placedTo?: string; // YYYY-MM-DD
  customerEmail?: string;
  minTotal?: string;
}

export async function listOrders(
  filters: OrderFilters,
  page = 1,
  ordering: OrderOrdering = "-created_at",
): Promise<Page<Order>> {
  const query = new URLSearchParams({ page: String(page), ordering });
  if (filters.status) query.set("status", filters.status);
  if (filters.placedFrom) query.set("created_at__date__gte", filters.placedFrom);
  if (filters.placedTo) query.set("created_at__date__lte", filters.placedTo);
  if (filters.customerEmail) query.set("customer__email__icontains", filters.customerEmail.trim());
  if (filters.minTotal) query.set("total__gte", filters.minTotal);
  return apiGet<Page<Order>>(`/api/orders/?${query.toString()}`);
}

export async function getOrder(number: string): Promise<OrderDetail> {
  return apiGet<OrderDetail>(`/api/orders/${encodeURIComponent(number)}/`);
}
