// calora's ESLint configuration: the only one ESLint is given (--no-config-lookup). A repository's
// .eslintrc.js / eslint.config.js is never written to the sandbox, let alone executed. Copied next to
// node_modules by `calora checks install eslint` so that the plugin imports resolve there.
import react from "eslint-plugin-react";
import reactHooks from "eslint-plugin-react-hooks";
import vue from "eslint-plugin-vue";
import vueParser from "vue-eslint-parser";
import tseslint from "typescript-eslint";

const security = {
  "no-eval": "error",
  "no-implied-eval": "error",
  "no-new-func": "error",
};

export default [
  {
    files: ["**/*.{js,jsx,mjs,cjs,ts,tsx,mts,cts}"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { ecmaFeatures: { jsx: true }, sourceType: "module" },
    },
    plugins: { react, "react-hooks": reactHooks },
    settings: { react: { version: "18.0" } },
    rules: {
      ...security,
      "react/no-danger": "error",
      "react/jsx-key": "error",
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
    },
  },
  {
    files: ["**/*.vue"],
    languageOptions: {
      parser: vueParser,
      parserOptions: { parser: tseslint.parser, sourceType: "module" },
    },
    plugins: { vue },
    rules: {
      ...security,
      "vue/no-v-html": "error",
      "vue/no-v-text-v-html-on-component": "error",
      "vue/no-mutating-props": "error",
      "vue/require-v-for-key": "error",
      // eslint-plugin-vue's own correctness rules (its "essential" set, less the template-syntax ones):
      // reactivity lost or misused, and computed properties with side effects
      "vue/no-use-v-if-with-v-for": "error",
      "vue/no-ref-as-operand": "error",
      "vue/no-setup-props-reactivity-loss": "error",
      "vue/no-side-effects-in-computed-properties": "error",
      "vue/no-async-in-computed-properties": "error",
      "vue/return-in-computed-property": "error",
      "vue/no-watch-after-await": "error",
      "vue/no-lifecycle-after-await": "error",
      "vue/no-dupe-keys": "error",
    },
  },
];
