"use client";

import { useFormState, useFormStatus } from "react-dom";
import { updatePayoutAccount, type PayoutFormState } from "./actions";

function SaveButton() {
  const { pending } = useFormStatus();
  return (
    <button type="submit" className="btn btn--primary" disabled={pending}>
      {pending ? "Saving…" : "Save bank account"}
    </button>
  );
}

export function PayoutAccountForm({ sellerId, holderName }: { sellerId: string; holderName: string | null }) {
  const [state, formAction] = useFormState<PayoutFormState, FormData>(updatePayoutAccount, { ok: false });

  return (
    <form action={formAction} className="form">
      <input type="hidden" name="sellerId" value={sellerId} />
      <label>
        Account holder
        <input name="holderName" defaultValue={holderName ?? ""} autoComplete="name" required />
      </label>
      {state.errors?.holderName && <p className="form__error">{state.errors.holderName[0]}</p>}
      <label>
        IBAN
        <input name="iban" inputMode="text" autoComplete="off" required />
      </label>
      {state.errors?.iban && <p className="form__error">{state.errors.iban[0]}</p>}
      <label>
        BIC (optional)
        <input name="bic" autoComplete="off" />
      </label>
      {state.errors?.bic && <p className="form__error">{state.errors.bic[0]}</p>}
      {state.ok && <p className="form__success">Your payout account was updated.</p>}
      <SaveButton />
    </form>
  );
}
