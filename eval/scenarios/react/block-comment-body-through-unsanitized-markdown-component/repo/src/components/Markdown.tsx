import { marked } from "marked";

type Props = { source: string; className?: string };

/** Renders the help-centre articles, which our writers author in the CMS. */
export function Markdown({ source, className }: Props) {
  const html = marked.parse(source, { async: false }) as string;
  return <div className={className} dangerouslySetInnerHTML={{ __html: html }} />;
}
