import debounce from "lodash/debounce";
import { useState } from "react";

import { searchAddresses, type AddressSuggestion } from "@/api/geo";

const MIN_QUERY_LENGTH = 3;
const LOOKUP_DELAY_MS = 300;

type Props = {
  countryCode: string;
  onSelect: (suggestion: AddressSuggestion) => void;
};

export function AddressAutocomplete({ countryCode, onSelect }: Props) {
  const [query, setQuery] = useState("");
  const [suggestions, setSuggestions] = useState<AddressSuggestion[]>([]);
  const [searching, setSearching] = useState(false);

  async function lookup(value: string) {
    if (value.trim().length < MIN_QUERY_LENGTH) {
      setSuggestions([]);
      return;
    }
    setSearching(true);
    try {
      setSuggestions(await searchAddresses(value, countryCode));
    } finally {
      setSearching(false);
    }
  }

  // The geocoding provider bills per request: only look up once the user pauses typing.
  const debouncedLookup = debounce((value: string) => {
    void lookup(value);
  }, LOOKUP_DELAY_MS);

  function choose(suggestion: AddressSuggestion) {
    onSelect(suggestion);
    setQuery(suggestion.label);
    setSuggestions([]);
  }

  return (
    <div className="address-autocomplete" aria-busy={searching}>
      <input
        type="text"
        autoComplete="off"
        aria-label="Street address"
        value={query}
        onChange={(event) => {
          setQuery(event.target.value);
          debouncedLookup(event.target.value);
        }}
      />
      {suggestions.length > 0 && (
        <ul role="listbox" className="address-autocomplete__list">
          {suggestions.map((suggestion) => (
            <li key={suggestion.id} role="option" aria-selected={false} onClick={() => choose(suggestion)}>
              {suggestion.label}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
