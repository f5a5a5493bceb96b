import { computed, ref } from "vue";

const user = ref(null);

export function useSession() {
  const signedIn = computed(() => user.value !== null);

  /** Whether the signed-in user may use the admin tools. */
  function isAdmin() {
    return user.value?.roles.includes("admin") ?? false;
  }

  return { user, signedIn, isAdmin };
}
