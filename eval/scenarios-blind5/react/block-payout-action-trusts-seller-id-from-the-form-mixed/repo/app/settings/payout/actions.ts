"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { auth } from "@/lib/auth";
import { db } from "@/lib/db";
import { isValidIban } from "@/lib/iban";

const scheduleSchema = z.object({
  schedule: z.enum(["weekly", "monthly"]),
});

export async function updatePayoutSchedule(formData: FormData) {
  const session = await auth();
  if (!session?.user) redirect("/login");

  const { schedule } = scheduleSchema.parse({ schedule: formData.get("schedule") });
  await db.seller.update({
    where: { userId: session.user.id },
    data: { payoutSchedule: schedule },
  });
  revalidatePath("/settings/payout");
}

const accountSchema = z.object({
  sellerId: z.string().cuid(),
  holderName: z.string().trim().min(2).max(70),
  iban: z
    .string()
    .transform((value) => value.replace(/\s+/g, "").toUpperCase())
    .refine(isValidIban, "This IBAN is not valid"),
  bic: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$/, "This BIC is not valid")
    .or(z.literal("")),
});

export type PayoutFormState = { ok: boolean; errors?: Record<string, string[] | undefined> };

export async function updatePayoutAccount(
  _prev: PayoutFormState,
  formData: FormData,
): Promise<PayoutFormState> {
  const session = await auth();
  if (!session?.user) redirect("/login");

  const parsed = accountSchema.safeParse(Object.fromEntries(formData));
  if (!parsed.success) {
    return { ok: false, errors: parsed.error.flatten().fieldErrors };
  }

  const { sellerId, holderName, iban, bic } = parsed.data;
  await db.seller.update({
    where: { id: sellerId },
    data: {
      payoutHolderName: holderName,
      payoutIban: iban,
      payoutBic: bic || null,
      payoutAccountUpdatedAt: new Date(),
    },
  });
  revalidatePath("/settings/payout");
  return { ok: true };
}
