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
    },
  },
];
