type Props = { user: { name: string; avatarUrl: string }; size: number };

export function Avatar({ user, size }: Props) {
  return <img className="avatar" src={user.avatarUrl} alt={user.name} width={size} height={size} />;
}
