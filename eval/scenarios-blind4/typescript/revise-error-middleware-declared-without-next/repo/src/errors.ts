export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message?: string,
  ) {
    super(message ?? code);
    this.name = "HttpError";
  }
}

export const notFound = (what: string) => new HttpError(404, `${what}_not_found`);
export const forbidden = () => new HttpError(403, "forbidden");
