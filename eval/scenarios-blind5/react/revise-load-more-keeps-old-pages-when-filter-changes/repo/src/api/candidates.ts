import { http } from "./http";
import type { Candidate, Stage } from "./types";

interface CandidateQuery {
  stage: Stage | "all";
  page: number;
  pageSize: number;
}

interface CandidatePage {
  items: Candidate[];
  hasMore: boolean;
}

export async function fetchCandidates({ stage, page, pageSize }: CandidateQuery): Promise<CandidatePage> {
  const params = new URLSearchParams({
    limit: String(pageSize),
    offset: String((page - 1) * pageSize),
  });
  if (stage !== "all") params.set("stage", stage);
  const res = await http.get<{ results: Candidate[]; count: number }>(`/candidates?${params}`);
  return { items: res.results, hasMore: page * pageSize < res.count };
}

export async function moveCandidate(id: string, stage: Stage): Promise<Candidate> {
  return http.patch<Candidate>(`/candidates/${id}`, { stage });
}
