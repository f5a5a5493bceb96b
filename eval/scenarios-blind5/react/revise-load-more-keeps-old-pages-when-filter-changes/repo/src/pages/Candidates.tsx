import { useEffect, useState } from "react";
import { fetchCandidates } from "../api/candidates";
import type { Candidate, Stage } from "../api/types";
import { CandidateRow } from "../components/CandidateRow";
import { STAGES } from "../constants";

const PAGE_SIZE = 50;

export function CandidatesPage() {
  const [stage, setStage] = useState<Stage | "all">("all");
  const [page, setPage] = useState(1);
  const [candidates, setCandidates] = useState<Candidate[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let ignore = false;
    setLoading(true);
    setError(null);
    fetchCandidates({ stage, page, pageSize: PAGE_SIZE })
      .then((res) => {
        if (ignore) return;
        setCandidates((prev) => [...prev, ...res.items]);
        setHasMore(res.hasMore);
      })
      .catch(() => {
        if (!ignore) setError("Couldn't load candidates.");
      })
      .finally(() => {
        if (!ignore) setLoading(false);
      });
    return () => {
      ignore = true;
    };
  }, [stage, page]);

  return (
    <section>
      <header className="page-header">
        <h1>Candidates</h1>
        <select value={stage} onChange={(e) => setStage(e.target.value as Stage | "all")}>
          <option value="all">All stages</option>
          {STAGES.map((s) => (
            <option key={s.id} value={s.id}>
              {s.label}
            </option>
          ))}
        </select>
      </header>
      {error && <p className="error">{error}</p>}
      <table className="candidates">
        <tbody>
          {candidates.map((c) => (
            <CandidateRow key={c.id} candidate={c} />
          ))}
        </tbody>
      </table>
      {loading && <p className="muted">Loading…</p>}
      {hasMore && !loading && (
        <button type="button" className="btn btn--secondary" onClick={() => setPage((p) => p + 1)}>
          Load more
        </button>
      )}
    </section>
  );
}
