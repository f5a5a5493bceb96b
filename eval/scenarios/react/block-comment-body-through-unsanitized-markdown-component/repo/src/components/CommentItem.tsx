import type { Comment } from "../api/types";
import { Avatar } from "./Avatar";
import { Markdown } from "./Markdown";

export function CommentItem({ comment }: { comment: Comment }) {
  return (
    <li className="comment">
      <Avatar user={comment.author} size={24} />
      <div className="comment-body">
        <strong>{comment.author.name}</strong>
        <Markdown source={comment.body} className="comment-text" />
      </div>
    </li>
  );
}
