/** What a 403 page says, on its own route and in place of a refused page's content. */
export const FORBIDDEN_TEXT = "您的角色不能查看或修改这项内容。如需权限，请联系管理员。";
